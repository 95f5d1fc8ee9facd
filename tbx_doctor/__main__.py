from tbx_doctor.cli import main

main()
