"""The notebook-facing layer: widgets, figures, exercises and the quick-mode banner. Imports every library layer
(``vpd_lite.erase`` and below); nothing but ``vpd_lite.commands`` imports it.

Reading order:
    notebook     the quick-mode banner and the notebooks' shipped-or-live decomposition loader
    plots        figures of a decomposition and its components
    widgets      the component browser
    edit_widget  the edit explorer (dose-response of one component's scalar)
    edit_plots   figures of the erase experiment
    exercises    the notebooks' exercise checks
    coding       the notebooks' coding-exercise checks (the student's function beside the library's)
    course_kit   the teacher's kit: a student copy of the notebooks and a reset of one exercise or notebook
"""
