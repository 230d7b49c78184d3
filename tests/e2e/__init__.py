"""radmap tests."""
