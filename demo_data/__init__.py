"""The embedded NSCLC Radiogenomics demo files (see DATA_CARD.md for attribution)."""
