# Datasets: torchvision download (digits: scikit-learn's bundled copy, offline) + one-time conversion to the compact
# file training loads in one read. Runs on the submit host (needs the network once); synthetic data is generated
# inside each job.

from lowrank import registry


rule prepare_data:
    output:
        str(layout.dataset_file(PLAN.data_root, "{dataset}")),
    log:
        log_path("prepare_data", "{dataset}"),
    wildcard_constraints:
        dataset="|".join(name for name, info in registry.DATASETS.items() if info.prepared),
    params:
        python=PYTHON,
        root=lambda wildcards, output: str(Path(output[0]).parent),
    localrule: True
    shell:
        "{params.python} -m lowrank.data {wildcards.dataset} --root {params.root} > {log} 2>&1"
