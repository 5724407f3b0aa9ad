"""Applications on top of the library: each one a task from input files to results.

- :mod:`mmalign.apps.sync`: audio <-> audio synchronisation of two recordings
  of the same music or speech (``mmalign sync``);
- :mod:`mmalign.apps.forced_alignment`: text <-> audio forced alignment through
  a synthetic rendering (``mmalign subtitle``), with the subtitle writers of
  :mod:`mmalign.apps.subtitles` (SRT, WebVTT, CSV);
- :mod:`mmalign.apps.demo`: the synthetic audio-to-audio demo with ground
  truth (``mmalign demo``, ``python -m mmalign demo``).

Nothing is imported here: ``import mmalign.apps.sync`` loads only what it needs.
The command line (:mod:`mmalign.cli`) sits on top of these modules.
"""
