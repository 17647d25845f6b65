"""The trained pipeline (feature extractor + joint model) built from a recipe; devices and precision; complexity."""
