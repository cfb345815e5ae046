"""Tests of vpd_lite.commands."""
