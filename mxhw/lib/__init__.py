"""Small helpers shared by the hardware generators: parameter checks (:mod:`.params`)."""
