"""Reconcilers: one object's observe -> record -> evaluate -> record, over the store.

This layer sits between the CLI (and later the loop) and the effect layers: it is where an
observer's result meets the store, and where recorded facts meet the pure evaluator.
"""
