"""One module per operation tab; each exposes `render(client)`."""
