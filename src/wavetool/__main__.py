from wavetool.cli import main

main()
