"""The tests: one folder per subpackage of vpd_lite (method, models, interpret, erase, tutorial, commands); the
project-wide tests (environment, packaging, layers, browser, dtypes) and the helpers sit here at the top."""
