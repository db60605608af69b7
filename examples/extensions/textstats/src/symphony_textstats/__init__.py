"""An example Symphony operator: text statistics over a file.

>>> from symphony_textstats import TextStats
>>> TextStats().analyze_text("the cat and the hat").words
5
"""

from symphony_textstats.stats import Stats, TextStats, TextStatsOperator

__all__ = ["Stats", "TextStats", "TextStatsOperator"]
