"""`sanad serve`: the web chat (Gradio), the HTTP API and the embeddable widget."""
