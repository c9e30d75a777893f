"""Data layer: MSR-Action3D and generic readers, synthetic dancers, preprocessing, pipelines."""
