"""Built-in layer plugins: registered through the same hook as third-party ones."""
