"""Headless training of every network: configs, run folders, checkpoints, the loop, export."""
