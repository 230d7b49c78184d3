"""Static files of the explorer (CSS, favicon), served at /assets/."""
