# Training: one job per pack of runs that share architecture, data, batch size and schedule (up to pack_size runs,
# or the architecture's resources.<arch>.pack_size; 1 = one run per job). Each run's logs land at the stable path
# results/runs/<run_id>/ whatever its pack, and its checkpoints in results/checkpoints/, so a killed job resumes. Only
# runs without their logs are packed (lowrank.plan.build): a logged run is no job's output, so a config edit that
# re-packs the others, or a new version of this rule's script, never retrains or rewrites it. Ask for figures (or
# `all`): a logged run's own files are sources, and naming one as a target finds "no rule to produce" it.
# The job reads how it trains (checkpoint_every, lease_stale_after_s, gpu_kernels, gpu_step: lowrank.views.
# EXECUTION_KEYS) from the config, not from params: Snakemake re-runs a job whose params changed, and switching how
# jobs run must not resubmit every finished pack. Its params are what its runs are.

for _pack in PLAN.packs:

    rule:
        name:
            _pack.name
        input:
            PLAN.dataset_files(_pack.runs[0].dataset),
            PLAN.retired_marks(_pack),  # a run retired as damaged: rewritten from its checkpoint
        output:
            PLAN.run_files(*(r.run_id for r in _pack.runs)),
        params:
            runs=[{"config": r.to_dict(), "out": str(layout.run_dir(PLAN.runs_dir, r.run_id))} for r in _pack.runs],
            ckpt_dir=str(layout.checkpoints_dir(RESULTS)),
            live_dir=str(layout.live_dir(RESULTS)),  # partial logs while it trains (python -m lowrank.status)
            data_root=data_folder,
            attempts_log=str(layout.attempts_file(RESULTS, _pack.name)),
        log:
            log_path("train", _pack.name),
        threads: _pack.resources["cpus"]
        resources:
            mem_mb=_pack.resources["mem_mb"],
            cpus_per_task=_pack.resources["cpus"],
            gpu=_pack.resources["gpus"],
            runtime=lambda wildcards, attempt, pack=_pack: pack.minutes(attempt, layout.checkpoints_dir(RESULTS)),
            attempt=lambda wildcards, attempt: attempt,  # for the header of the attempt's log
        script:
            "../scripts/train_pack.py"
