"""The only module that writes execution state. Every transition happens here, in one place."""
