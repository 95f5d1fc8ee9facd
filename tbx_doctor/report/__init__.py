"""Stage 4, reports: the verification checklist and the renderers (text, JSON, markdown)."""
