"""Execution: parent orders, algorithms, conditional flows, strategy documents and smart order routing."""
