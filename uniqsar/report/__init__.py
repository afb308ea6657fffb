"""The run report: one self-contained HTML file (``uniqsar report``; ``fit`` writes ``RUN/report.html``)."""
