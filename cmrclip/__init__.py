"""The CMR-CLIP model library: video and text encoders, loss, checkpoints.

Imports none of trainer/, indexer/ or search/ (open_clip vs open_clip_train).
"""
