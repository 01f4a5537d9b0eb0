# Training: one job per pack of runs that share architecture, data, batch size and schedule (up to pack_size runs,
# or the architecture's resources.<arch>.pack_size; 1 = one run per job). Each run's logs land at the stable path results/runs/<run_id>/ whatever its pack, and
# its checkpoints in results/checkpoints/, so a killed or re-packed job resumes and never retrains a finished run.
# The job reads how it trains (checkpoint_every, lease_stale_after_s, gpu_kernels, gpu_step: lowrank.views.
# EXECUTION_KEYS) from the config, not from params: Snakemake re-runs a job whose params changed, and switching how
# jobs run must not resubmit every finished pack. Its params are what its runs are.

for _pack in PACKS:

    rule:
        name:
            pack_name(_pack)
        input:
            dataset_file(_pack[0].dataset),
        output:
            [f for r in _pack for f in run_files(r.run_id)],
        params:
            runs=[{"config": r.to_dict(), "out": str(run_dir(r.run_id))} for r in _pack],
            ckpt_dir=str(checkpoint_dir()),
            data_root=data_folder,
            attempts_log=str(attempts_log(_pack)),
        log:
            log_path("train", pack_name(_pack)),
        threads: pack_resources(_pack)["cpus"]
        resources:
            mem_mb=pack_resources(_pack)["mem_mb"],
            cpus_per_task=pack_resources(_pack)["cpus"],
            gpu=pack_resources(_pack)["gpus"],
            runtime=pack_runtime(_pack),
            attempt=lambda wildcards, attempt: attempt,  # for the header of the attempt's log
        script:
            "../scripts/train_pack.py"
