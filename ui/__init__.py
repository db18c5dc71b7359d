"""The Gradio Blocks app. It talks to the queue only through `tasks.client`."""
