"""Built-in presets: rules files shipped as data (see `kmirror presets --all`)."""
