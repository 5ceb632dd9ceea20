"""Ingest a DICOM archive and its reports into the catalog."""
