"""nq-ray."""
