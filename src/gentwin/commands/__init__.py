"""The console scripts, one thin module each: parse the arguments, call the library, map errors to exit codes."""
