"""Chart builders: pure functions from plain data (dicts, lists, arrays) to Plotly figures.

Every axis that shows a hyperparameter is drawn on that parameter's own scale, taken from the
search space through ``engine.search`` (``AxisInfo``): a log axis for a log parameter, a log axis
of ``1 - beta`` (reversed, titled so) for ``one_minus_log``, categories for a ``Choice``.

- ``search``: sampler previews, sampled points against the score, pairs, parallel coordinates,
  best-so-far.
- ``curves``: loss and accuracy curves of many trials (WebGL, downsampled, aggregated).
- ``compare``: several studies side by side.
- ``data``: dataset previews (2-D scatter, digit mosaic, class counts).
"""
