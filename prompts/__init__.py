"""Every prompt and fixed phrase, as text files shipped with the package (read by app.prompts)."""
