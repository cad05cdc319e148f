"""Paper execution: fill rules shared with the backtester, the broker book, its journal and actor."""
