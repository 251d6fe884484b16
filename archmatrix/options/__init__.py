"""The harness's command-line options, and their checking into a Settings value.

declare.py declares them (names, defaults, help); values.py checks each value into Settings (settings.py), with
words.py (an OptionError naming the option, pairs and names) and nova.py (the Nova cells' options); machine.py is
what the controller checks on this machine before a run; on_argparse.py puts them on an argparse parser. What
the rest of archmatrix uses of them is named here.
"""

from archmatrix.options.declare import add_options
from archmatrix.options.machine import checked_settings
from archmatrix.options.on_argparse import add_options_to_argparse, option_defaults, settings_for
from archmatrix.options.settings import Settings
from archmatrix.options.values import settings_from
from archmatrix.options.words import OptionError

__all__ = ["OptionError", "Settings", "add_options", "add_options_to_argparse", "checked_settings",
           "option_defaults", "settings_for", "settings_from"]
