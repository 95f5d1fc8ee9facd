"""tbx-doctor sub-commands, one module each; tbx_doctor/cli.py registers them."""
