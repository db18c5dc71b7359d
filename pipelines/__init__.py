"""Image operations as plain Python: image in, image out.

Nothing here imports Celery or Gradio. Each operation lives in its own module or
package and registers its engines with `pipelines.registry`; heavy libraries are
imported inside the engine that needs them, so importing this package is cheap.
"""
