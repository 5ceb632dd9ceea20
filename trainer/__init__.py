"""Contrastive training of the CMR-CLIP model on catalog clips and reports."""
