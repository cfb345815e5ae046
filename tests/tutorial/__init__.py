"""Tests of vpd_lite.tutorial."""
