"""Strategy documents: parent orders and a small flow of nodes, written in TOML or JSON, no code.

:mod:`.schema` builds the JSON Schema shipped as ``strategy.schema.json``; :mod:`.validate` loads a
document and reports every problem with its path in the document; :mod:`.model` is the typed document
the flow runner reads.
"""
