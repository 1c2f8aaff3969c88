import LangTune
print("langtune")
