"""How public verification compares a typed name with the holder's (``registry.schemas.person_name_key``): a space
between two letters of a script written in words separates two words and counts; every other space, the case, the
dot's form and the width of the characters do not."""

from __future__ import annotations

import pytest

from registry.schemas import person_name_key

# (the holder's name as stored, as an employer may type it): the same person.
SAME = [
    ("LI NA", "li na"),
    ("LI NA", "Li  Na"),  # a run of spaces is one space
    ("LI NA", " LI NA "),
    ("LI NA", "ＬＩ\u3000ＮＡ"),  # full-width letters and the ideographic space of a Chinese input method
    ("LI NA", "LI\u00a0NA"),  # a no-break space pasted from a web page
    ("Maria José", "Maria  José"),
    ("Maria José", "MARIA JOSÉ"),
    ("José Müller", "JOSE\u0301 MU\u0308LLER"),  # decomposed accents
    ("Nguyễn Thị Minh Khai", "nguyễn  thị minh khai"),
    ("Кирилл Петров", "КИРИЛЛ ПЕТРОВ"),
    ("Μαρία Παπαδοπούλου", "ΜΑΡΊΑ ΠΑΠΑΔΟΠΟΎΛΟΥ"),
    ("张伟", "张 伟"),  # a space beside a Chinese character is how it was typed
    ("欧阳 娜娜", "欧阳娜娜"),
    ("欧阳 娜娜", "欧 阳娜娜"),
    ("王\U00020000", "王 \U00020000"),  # CJK Extension B
    ("李\U00031350", "李 \U00031350"),  # Extension H: unassigned in this Python's tables, still a 汉字
    ("张Wei", "张 Wei"),  # a space beside a Chinese character, whatever is on its other side
    ("买买提·艾力", "买买提 · 艾力"),  # spaces beside a dot
    ("阿依古丽·买买提", "阿依古丽 ・ 买买提"),
    ("Aygul·Memet", "AYGUL · MEMET"),  # a transliterated Uyghur name with its middle dot
    ("Aygul·Memet", "Aygul. Memet"),
    ("Jean-Pierre Dupont", "Jean - Pierre Dupont"),  # spaces beside a hyphen
    ("O'Brien", "O' Brien"),  # beside an apostrophe
    ("J. R. Smith", "J.R. Smith"),  # beside a full stop (compared as the dot)
]

# (the holder's name as stored, another person's name): the space has moved, gone or come between two letters.
DIFFERENT = [
    ("LI NA", "LIN A"),
    ("LI NA", "Lin A"),
    ("LI NA", "LINA"),
    ("LI NA", "L INA"),
    ("ANNA LEE", "ANN ALEE"),
    ("ANNA LEE", "ANNALEE"),
    ("Maria José", "Mari AJosé"),
    ("Кирилл Петров", "КириллП етров"),
    ("Μαρία Παπα", "Μαρ ίαΠαπα"),
    ("Nguyễn Thị", "Nguyễ nThị"),  # the letter before the space ends in an accent
    ("Ma\u0304ui Te", "Ma\u0304 uiTe"),  # a combining mark with no precomposed letter counts with its letter
    ("Aygul·Memet", "Aygul Memet"),  # a space is not the dot (as before)
    ("阿依古丽·买买提", "阿依古丽 买买提"),
    ("Jean-Pierre", "Jean Pierre"),  # nor a hyphen (as before)
    ("买买提·艾力", "买买提·艾力江"),
]


@pytest.mark.parametrize(("stored", "typed"), SAME)
def test_the_holders_name_typed_any_usual_way_has_the_same_key(stored: str, typed: str) -> None:
    assert person_name_key(typed) == person_name_key(stored)


@pytest.mark.parametrize(("stored", "typed"), DIFFERENT)
def test_another_persons_name_has_another_key(stored: str, typed: str) -> None:
    assert person_name_key(typed) != person_name_key(stored)


def test_a_counted_space_is_kept_as_one_space_and_every_other_left_out() -> None:
    assert person_name_key("  Li \t Na  ") == "li na"
    assert person_name_key("欧阳 娜娜") == "欧阳娜娜"
    assert person_name_key("买买提 ・ 艾力") == "买买提·艾力"
    assert person_name_key("Jean - Pierre") == "jean-pierre"
    assert person_name_key("") == person_name_key("   ") == ""


def test_a_space_beside_a_character_of_a_script_written_without_spaces_is_left_out() -> None:
    # Kana, Hangul, Thai and Tibetan: names stored before the printable-name rule may hold them; as before.
    assert person_name_key("やまだ たろう") == person_name_key("やまだた ろう")
    assert person_name_key("김 민수") == person_name_key("김민 수")
    assert person_name_key("สมชาย ใจดี") == person_name_key("สมชายใจดี")
    assert person_name_key("བཀྲ་ཤིས ") == person_name_key("བཀྲ་ཤིས")


def test_a_letter_of_any_script_written_in_words_makes_the_space_count() -> None:
    assert person_name_key("محمد علي") != person_name_key("محمدعلي")  # Arabic
    assert person_name_key("Հայկ Ար") != person_name_key("ՀայկԱր")  # Armenian
    assert person_name_key("राम कुमार") != person_name_key("रामकुमार")  # Devanagari
    assert person_name_key("रवि कुमार") != person_name_key("रविकुमार")  # the first word ends in a vowel sign (Mc)
