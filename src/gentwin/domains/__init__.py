"""Domains: one folder each (reader or simulator, datamodule, properties and metrics, nets, figures).

Generic layers (models, losses, nets, metrics, training, commands) never import a domain; a domain
imports generic layers. A new domain is a folder here, a YAML file in configs/dataset/ and a test file.
"""
