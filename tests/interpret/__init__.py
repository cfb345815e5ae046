"""Tests of vpd_lite.interpret."""
