# A SLURM controller's hooks (lowrank.controller): at its start it names the jobs an earlier controller left and
# keeps its jobs through a scheduler outage (lowrank.outage: the executor plugin would drop them); when it stops it
# cancels (after Ctrl-C) or names (after another error) the jobs it left. Ctrl-C reaches Snakemake's main thread at
# once (lowrank.interrupt), whichever thread the kernel handed it to.
from snakemake.logging import logger

from lowrank import interrupt, outage
from lowrank.controller import Controller

interrupt.forward_ctrl_c_to_main_thread()
# any training job from this folder: an earlier controller packed what was unlogged then (lowrank.plan.build)
CONTROLLER = Controller(lambda rule: rule.startswith("train_"), workflow.workdir_init, logger.warning)


def slurm_controller():
    """Is this Snakemake the controller of a SLURM run (not a local run, nor a job step inside SLURM)?"""
    return workflow.executor_plugin is not None and workflow.executor_plugin.name.endswith("slurm")


onstart:
    if slurm_controller():
        outage.keep_jobs(workflow.executor_plugin.executor, logger.warning)
        CONTROLLER.on_start()


onerror:
    if slurm_controller():
        CONTROLLER.on_error(interrupt.ctrl_c_seen())
