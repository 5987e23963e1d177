import pytest

from dllint.source import ParseFailure, decode, parse


def test_pep263_latin1_is_decoded():
    data = "# -*- coding: latin-1 -*-\nname = 'café'\n".encode("latin-1")
    assert "café" in decode(data)


def test_bom_is_dropped_and_line_endings_normalised():
    text = decode(b"\xef\xbb\xbfa = 1\r\nb = 2\rc = 3\n")
    assert text == "a = 1\nb = 2\nc = 3\n"


def test_nul_byte_is_a_parse_failure_with_its_line():
    with pytest.raises(ParseFailure) as info:
        decode(b"a = 1\nb = \x00\n")
    assert info.value.line == 2


def test_undecodable_bytes_name_the_encoding():
    with pytest.raises(ParseFailure, match="utf-8"):
        decode(b"a = '\xff\xfe'\n")


def test_syntax_error_reports_the_parser_position():
    with pytest.raises(ParseFailure) as info:
        parse("def f(:\n    pass\n")
    assert info.value.line == 1 and info.value.column > 1
    assert "syntax error" in info.value.message


def test_python2_print_statement_is_a_parse_failure():
    with pytest.raises(ParseFailure):
        parse('print "hello"\n')
