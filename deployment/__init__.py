"""Deployment files shipped with stardiffuse (jobqueue.yaml, Slurm batch scripts); no code.

A package only so that ``jobqueue.yaml`` is installed with the wheel and found by
``tasks.cluster.DEFAULT_JOBQUEUE_CONFIG`` outside a source checkout.
"""
