"""Tests of vpd_lite.method."""
