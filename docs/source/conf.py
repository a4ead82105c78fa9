"""Sphinx configuration of the aiida-sianode documentation."""

import aiida_sianode

project = 'aiida-sianode'
author = 'The aiida-sianode developers'
copyright = '2026, The aiida-sianode developers'
version = release = aiida_sianode.__version__

extensions = ['myst_parser', 'sphinx_click', 'sphinx.ext.autodoc', 'sphinx.ext.napoleon']
myst_enable_extensions = ['colon_fence', 'deflist']
source_suffix = {'.md': 'markdown', '.rst': 'restructuredtext'}
exclude_patterns = ['build']
html_theme = 'sphinx_book_theme'
html_title = 'aiida-sianode'
suppress_warnings = ['myst.header']
myst_heading_anchors = 3
