"""Configuration templates (FR5.2.2): the library's cards, "Save as Template" on a job, and what a
template puts into the new-job form."""
