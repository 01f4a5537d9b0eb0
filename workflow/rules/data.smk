# Datasets: torchvision download (digits: scikit-learn's bundled copy, offline) + one-time conversion to the compact
# file training loads in one read. Runs on the submit host (needs the network once); synthetic data is generated
# inside each job.


rule prepare_data:
    output:
        str(DATA_ROOT / "{dataset}.pt"),
    log:
        str(RESULTS / "logs" / "prepare_data" / "{dataset}.log"),
    wildcard_constraints:
        dataset="cifar10|mnist|fashion_mnist|svhn|digits",
    localrule: True
    shell:
        "python -m lowrank.data {wildcards.dataset} --root {DATA_ROOT} > {log} 2>&1"
