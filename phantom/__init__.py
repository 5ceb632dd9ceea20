"""The synthetic CMR archive generator: cine DICOM, reports and ground truth."""
