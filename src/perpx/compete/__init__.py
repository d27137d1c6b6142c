"""AI trading competitions: participants trade the same seeded market on a real perpx venue, each
through an agent key with the same limits and the same starting capital (``perpx compete``)."""
