"""Small helpers shared by the hardware generators: parameter checks (:mod:`.params`) and
signal-level building blocks (:mod:`.signals`)."""
