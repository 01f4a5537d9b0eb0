# Datasets: torchvision download (digits: scikit-learn's bundled copy, offline) + one-time conversion to the compact
# file training loads in one read. Runs on the submit host (needs the network once); synthetic data is generated
# inside each job.


rule prepare_data:
    output:
        str(DATA_ROOT / "{dataset}.pt"),
    log:
        str(RESULTS / "logs" / "prepare_data" / "{dataset}.log"),
    wildcard_constraints:
        dataset="|".join(name for name, info in lowrank_data.DATASETS.items() if info.prepared),
    localrule: True
    shell:
        "{PYTHON} -m lowrank.data {wildcards.dataset} --root {DATA_ROOT} > {log} 2>&1"
